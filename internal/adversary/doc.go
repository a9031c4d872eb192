// Package adversary holds the attacks an adversarial review (issue 18, a
// reviewer who saw only the docs and the public API) wrote against core's
// promise. Every test here failed on core before its fix, or pins a
// behaviour the attack found to hold; they run in every `go test ./...`.
package adversary
