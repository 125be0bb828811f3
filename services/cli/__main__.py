"""`python -m services.cli ...`: how the local stack and the tests start a service."""
from services.cli.main import main

main()
