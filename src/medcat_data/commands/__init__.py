"""Click commands, grouped by job; registered in cli.py."""
