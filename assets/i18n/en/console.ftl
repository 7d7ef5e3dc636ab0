# The agent's console (tether-console).
