"""The live controller: per app, metrics -> observation -> endpoint -> rules -> guard -> apply."""
