"""``python -m medcat_data`` runs the command line."""

from medcat_data.cli import main

if __name__ == "__main__":
    main()
