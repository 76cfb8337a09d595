"""People to folders: `layout` plans (pure), `folders` applies a plan atomically, `observe`
reads the folders back (user renames, deleted links). No database here: the pipeline hands
plans in and records what was applied."""
