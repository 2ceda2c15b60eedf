"""Generated data: the synthetic SoccerNet benchmark, the built-in demo match, toy videos with visible events."""
