"""Where results go. Every sink follows :class:`pipeline.sinks.base.Sink`."""
