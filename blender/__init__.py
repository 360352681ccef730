"""Blender side of hangar-synth.

`spec` and `labels` are pure numpy (testable without Blender); `build` and
`render` import bpy and are the only modules in the project that do.
"""
