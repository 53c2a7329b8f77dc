"""One BIG-Bench Hard task (navigate) as a single micro-prompt with an enum answer."""
