try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C in the first milliseconds, before main() defers it while torch loads
    import sys

    print("entropyeng: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

raise SystemExit(main())
