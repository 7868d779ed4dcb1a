"""`make load`: scenarios against the stack through nginx, and a report (README: Load testing)."""
