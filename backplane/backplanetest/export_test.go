package backplanetest

import "time"

// ShortenWaits sets the suite's deadlines for a payload, a state report or
// a prompt return to d, and each call's to twice d. Call it before Run, in
// a process of its own: TestSuiteCatchesFlaws's children, where the suite
// runs on an in-memory backplane and each flaw otherwise costs a full 20 s
// wait for what never comes.
func ShortenWaits(d time.Duration) {
	waitTimeout, prompt, callTimeout = d, d, 2*d
}
