"""Build-time pages of the docs site (run by the mkdocs-gen-files plugin): the trial-key, space-file
and command-line references, written from the code by ``spa_tune.reference``."""

import mkdocs_gen_files

from spa_tune.reference import cli_page, space_file_page, trial_keys_page

for name, write in (("trial-keys", trial_keys_page), ("space-file", space_file_page), ("cli", cli_page)):
    with mkdocs_gen_files.open(f"reference/{name}.md", "w") as page:
        page.write(write())
