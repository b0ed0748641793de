from model_repository.lifecycle.cli import main

raise SystemExit(main())
