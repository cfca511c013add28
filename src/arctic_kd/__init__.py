"""arctic-kd: distil an RGB video teacher into an infrared student for action recognition."""

__version__ = "0.1.0"
