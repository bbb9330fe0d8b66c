"""The pass manager (:mod:`.passes`): runs the rules, applies their fixes
through :mod:`graphfix.patch.region`, and checks its own work
(:mod:`.selfcheck`); the guard builders the rules share (:mod:`.guards`); the
same for function bodies of TF2 control flow (:mod:`.functions`,
:mod:`.funcpatch`)."""
