from hearth.cli.main import main

raise SystemExit(main())
