"""serving/: run time — deploy into a Triton model repository, start tritonserver, gRPC client."""
