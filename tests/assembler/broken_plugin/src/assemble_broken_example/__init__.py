import this_dependency_is_not_installed  # noqa: F401  # the failure under test
