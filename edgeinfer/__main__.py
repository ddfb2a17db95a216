"""`python -m edgeinfer` runs the CLI."""
from edgeinfer.cli import main

if __name__ == "__main__":
    main()
