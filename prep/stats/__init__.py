"""Statistics: corpus steps that drop nothing and measure the rows a build keeps (prep/step.py `Stats`)."""
