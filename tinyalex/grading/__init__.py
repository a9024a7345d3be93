"""The autograder behind ``tinyalex grade``: students write the paper's layers, the engine checks them.

``checks`` holds the building blocks (a case, a check, a verdict, hints for classic mistakes);
``exercises/`` one module per exercise (the task text the stubs are made from, and its checks);
``solutions`` the instructor's answers, which delegate to the engine; ``worker`` runs one
exercise of one student file in a subprocess; ``runner`` starts the workers with a time limit and
prints the report; ``stubs`` writes the exercise files from the exercise modules.
"""
