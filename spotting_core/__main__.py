from spotting_core.cli import main

raise SystemExit(main())
