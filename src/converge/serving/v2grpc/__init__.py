"""Open Inference Protocol over gRPC: our .proto, its generated modules, the servicer."""
