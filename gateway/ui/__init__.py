"""Pages for people at /ui: the service-hall counter and the credit office's dashboard."""
