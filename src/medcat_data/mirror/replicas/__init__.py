"""One replica builder per registry id, same stem as its recipe."""
