"""The course tests: a package, so that tools name its modules tests.*."""
