package tpmtest

import "time"

// ValidFrom and ValidUntil bound every Manufacturer's root and EK
// certificates, long like real ones (an EK certificate lives as long as
// its chip), so tests pinned to any clock between them verify.
var (
	ValidFrom  = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	ValidUntil = time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)
)
