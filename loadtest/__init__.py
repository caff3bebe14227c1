"""loadtest/: Locust gRPC users, the evaluator and reports."""
