"""The rule catalogue (rules/*.toml), shipped inside the wheel as analyzer.rules."""
