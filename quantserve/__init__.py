"""quantserve: optimize a trained model to INT8, serve it with Triton, and prove speed and accuracy."""

import os

from quantserve.errors import InternalError, QuantserveError

# gRPC's fork handlers (on unless told otherwise: grpc/grpc#43055, grpcio 1.81 on) restart its poller thread in a child
# forked to run a program; the child closes what it inherited before exec, the poller's epoll descriptor among them,
# and gRPC aborts it ("epoll_wait error: Bad file descriptor"). quantserve forks only to exec (Locust, tritonserver;
# a preexec_fn makes Python fork, not vfork) and never uses gRPC in a forked child, so the handlers are off, set here
# before any of its modules imports grpc (read once, at grpc's first use; a value the user set wins). Session 42: 21
# of 300 children of a process asking over gRPC aborted so, 1 of 300 after one closed channel; CI, session 41: a
# loadtest's Locust process died so before it started (exit -6).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

__all__ = ["InternalError", "QuantserveError"]
__version__ = "0.1.0"
