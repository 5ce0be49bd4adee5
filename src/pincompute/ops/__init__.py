"""Operations automation: the platform fixing and upgrading its own fleet (DESIGN §9).

Remediation (:mod:`.remediation`, guarded by :mod:`.breaker` and :mod:`.ratelimit`,
escalating per :mod:`.escalation`), node images with inheritance (:mod:`.nodeimages`)
and application-aware rotation (:mod:`.rotation`, planned by :mod:`.rotationplan`).
Every action goes through Kubernetes objects — Node cordons and drain marks,
NodePool sizes, pod deletions that first ask the disruption budget
(:func:`pincompute.model.disruption.may_evict`) — so the same code runs on embedded
and on real clusters; the node provisioner of embedded clusters does the rest.
"""
