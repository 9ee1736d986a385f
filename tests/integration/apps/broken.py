"""An app that fails to import: the server must stop before binding."""
import a_module_that_does_not_exist  # noqa: F401

application = None
