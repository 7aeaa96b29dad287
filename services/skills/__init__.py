"""The skills service (ducklm.skills.v1): the registry of skills on disk in the Agent Skills
format, the experience log of finished tasks, and skill proposals awaiting review.

It reads skills from one folder and writes into it only when a reviewer promotes a valid
proposal. It must never load a proposal, an invalid skill or a file outside a skill's folder as
part of a skill, and it never runs a skill's scripts: it only hands out their text.
"""
