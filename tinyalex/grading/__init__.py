"""The autograder behind ``tinyalex grade``: students write the paper's layers, the engine checks them.

``checks`` holds the building blocks (a case, a check, a verdict, hints for classic mistakes);
``exercises/`` one module per exercise (the task text the stubs are made from, and its checks);
``solutions`` the instructor's answers, which delegate to the engine; ``worker`` is the student's
process, which only runs the student's functions and returns their outputs; ``runner`` starts workers
with limits, compares and reports; ``gradebook`` grades a class folder; ``stubs`` writes the exercise
files from the exercise modules.
"""
