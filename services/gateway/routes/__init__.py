"""The gateway's routes, one module per resource. Each route is a thin translation to gRPC."""
