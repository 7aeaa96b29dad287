"""Settings of the skills service, read from `DUCKLM_SKILLS_<FIELD>` variables; every field has a
default that runs locally with no file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from services.common.config import data_dir, repo_root

__all__ = ["Settings"]


class Settings(BaseModel):
    address: str = "127.0.0.1:50053"
    # The skills folder: one sub-folder per skill. The repo ships `skills/`.
    skills_dir: Path = Field(default_factory=lambda: repo_root() / "skills")
    database: Path = Field(default_factory=lambda: data_dir() / "skills.db")
    # Drafts awaiting review; never scanned as skills, so it must not overlap the skills folder.
    proposals_dir: Path = Field(default_factory=lambda: data_dir() / "proposals")
    # The registry looks for changes on disk at most this often (seconds); 0 checks every request.
    rescan_interval: float = Field(default=0.5, ge=0)
    # The largest skill file GetSkillFile hands out (gRPC's default message limit is 4 MiB).
    max_file_bytes: int = Field(default=1024 * 1024, gt=0, le=3 * 1024 * 1024)
    # Judge skills by the spec alone: extra front-matter keys and a name that differs from the
    # folder reject the skill instead of loading it with a warning.
    strict: bool = False

    @model_validator(mode="after")
    def _proposals_apart_from_skills(self) -> Settings:
        skills = self.skills_dir.resolve()
        proposals = self.proposals_dir.resolve()
        if proposals.is_relative_to(skills) or skills.is_relative_to(proposals):
            raise ValueError(
                f"proposals_dir ({proposals}) and skills_dir ({skills}) must not contain one another: "
                "drafts would be loaded as skills"
            )
        return self
