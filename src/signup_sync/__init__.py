"""SignUp_Sync: multi-source funnel tracking and synchronisation."""

__version__ = "0.1.0"
SERVICE_NAME = "SignUp_Sync"
