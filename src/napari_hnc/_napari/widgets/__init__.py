"""Dock widgets: thin magicgui containers that read parameters and call the controller."""
