"""Teaching models: the smallest members of each family, used by the demo, the tests and the tutorials."""
