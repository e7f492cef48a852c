"""The autograder: a student's diff → in-scope hunks per bug → a fresh grading copy →
the bug's tests in a sandboxed worker → a verdict per bug → reports.

`debuglab.grade.grader.grade` grades one submission, `grade_many` a class; `reports`
renders what they return; `commands` holds the click commands `check` and `grade`."""
