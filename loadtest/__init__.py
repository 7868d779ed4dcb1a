"""`make load`: scenarios against the stack through nginx, and a report (docs/load-testing.md)."""
