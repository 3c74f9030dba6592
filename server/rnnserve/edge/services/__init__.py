"""gRPC servicers: thin adapters from protobuf messages to the scheduler and back."""
