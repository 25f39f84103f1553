"""``python -m ppl_models`` is the same as the ``ppl-models`` command."""

from ppl_models.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
