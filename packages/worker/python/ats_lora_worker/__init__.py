"""ats-lora's Python worker: owns the tensors, speaks JSON-RPC 2.0 over stdin/stdout (one message a line)."""

__version__ = "0.1.0"
