"""The held-out suite: other requests over another workspace, kept apart from `suite.py`.

The runtime's prompts and rules are worked out against the main suite. These tasks were written
once, before any run, and are not tuned against: a figure here says how the agent does on
requests nobody shaped it for. Run with `make eval EVAL_ARGS="--suite heldout"`.
"""

from __future__ import annotations

from functools import partial

from scripts.eval.suite import FIND_TOOLS, LIST_TOOLS, READ_TOOLS, EvalTask, FileCheck

__all__ = ["HELDOUT_FILES", "HELDOUT_TASKS"]

HELDOUT_FILES: dict[str, str] = {
    "recipes/pancakes.md": "# Pancakes\nFlour: 200 g\nMilk: 300 ml\nEggs: 2\nCook each side for 2 minutes.\n",
    "recipes/soup.txt": "Tomato soup\nSimmer for 25 minutes.\nServes 4.\n",
    "shopping.md": "- apples\n- rice\n- coffee\n- soap\n",
    "config/app.ini": "[server]\nhost = 0.0.0.0\nport = 9090\n[log]\nlevel = debug\n",
    "scores.csv": "player,points\nAnna,31\nBen,44\nCleo,27\n",
    "src/main.py": "def greet(name):\n    return f'Hello {name}'\n\n\ndef farewell(name):\n    return f'Bye {name}'\n",
    "CHANGELOG.md": "# Changelog\n## 1.4.0\n- Dark mode\n## 1.3.2\n- Fixed login bug\n",
}


_task = partial(EvalTask, workspace=HELDOUT_FILES)


HELDOUT_TASKS: tuple[EvalTask, ...] = (
    _task("h-list-recipes", "list", "What's inside the recipes folder?", LIST_TOOLS, ("pancakes.md", "soup.txt")),
    _task("h-list-top", "list", "Show me the top-level contents of my workspace.", LIST_TOOLS, ("recipes", "shopping.md")),
    _task("h-find-py", "find", "Where is the Python code? Find .py files.", FIND_TOOLS, ("main.py",)),
    _task("h-find-ini", "find", "Are there any .ini files? Tell me where.", FIND_TOOLS, ("app.ini",)),
    _task("h-read-port", "read", "What port does config/app.ini use?", READ_TOOLS, ("9090",)),
    _task("h-read-milk", "read", "How much milk goes into the pancakes? Check recipes/pancakes.md.", READ_TOOLS, ("300",)),
    _task("h-read-simmer", "read", "How long should the soup simmer? See recipes/soup.txt", READ_TOOLS, ("25",)),
    _task("h-read-top-score", "read", "Who scored the most points in scores.csv?", READ_TOOLS, ("ben",)),
    _task("h-read-changelog", "read", "What was added in version 1.4.0 according to CHANGELOG.md?", READ_TOOLS, ("dark mode",)),
    _task("h-read-level", "read", "What log level is configured in config/app.ini?", READ_TOOLS, ("debug",)),
    _task("h-count-shopping", "count", "How many things are on my shopping list in shopping.md?", READ_TOOLS, ("4", "four")),
    _task("h-count-soup", "count", "How many lines are there in recipes/soup.txt?", READ_TOOLS, ("3", "three")),
    _task("h-summary-soup", "summarise", "Briefly, what is recipes/soup.txt about?", READ_TOOLS, ("soup", "tomato")),
    _task("h-write-plan", "write", "Create a file named plan.txt containing: buy flour.", ("write_file",),
          files=(FileCheck("plan.txt", ("flour",)),)),
    _task("h-write-dir", "write", "Make a directory called backups.", ("make_dir", "run_command"), files=(FileCheck("backups/"),)),
    _task("h-write-status", "write", "Write 'ship it' into status.md.", ("write_file",), files=(FileCheck("status.md", ("ship it",)),)),
    _task("h-command-wc", "command", "Run wc -l shopping.md", ("run_command",), ("4",)),
    _task("h-command-ls", "command", "Execute ls recipes", ("run_command",), ("pancakes.md",)),
    _task("h-general-planet", "no_tool", "What is the largest planet in our solar system?", (), ("jupiter",), max_steps=1),
    _task("h-general-evening", "no_tool", "Good evening!", (), ("evening", "hello"), max_steps=1),
    _task("h-general-times", "no_tool", "What is 7 times 6?", (), ("42", "forty-two", "forty two"), max_steps=1),
    _task("h-multi-fewest", "multi_step", "Find the CSV file and tell me who scored the fewest points.",
          FIND_TOOLS + ("read_file",), ("cleo",), max_steps=4),
    _task("h-multi-shopping", "multi_step", "Add 'milk' to my shopping list in shopping.md.", ("read_file", "run_command"),
          files=(FileCheck("shopping.md", ("milk", "apples")),), max_steps=4),
)
