"""The long-running service: watchers, event intake, the main loop, systemd's protocol."""
