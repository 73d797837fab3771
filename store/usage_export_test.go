package store

// StopCompactor stops s's background compactor and keeps it from starting,
// so that a test decides when CompactRollups runs.
func StopCompactor(s *Store) { s.ingest.stop() }

// CompactorRunning reports whether s's compactor goroutine is alive.
func CompactorRunning(s *Store) bool {
	st := s.ingest
	st.loopMu.Lock()
	running, done := st.running, st.done
	st.loopMu.Unlock()
	if !running {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}
