package runner

// A Sink takes the records of a load as they are made: Start, NewEventSource and
// Publisher.Run put every record they make into one.
//
// The rules:
//   - Put is called from many goroutines at once: the event loops, HTTP/2 connection
//     readers, the goroutines of streams read on their own, the engine, a Publisher.
//   - The records of one stream come in order, from one goroutine at a time.
//   - Put runs on the goroutine that made the record and holds it up meanwhile (an
//     event loop holds up every stream it serves), so it must be quick. It must not
//     call the runner back (Close, Wait, ...): the caller may be the loop that would
//     have to act on it.
//   - Put must not keep r past its return: the caller reuses it. What it keeps, it
//     copies (*r).
//   - Every record of a source is put before its Run returns, of a Load before Wait
//     returns, and of a Publisher before Run returns.
//
// r is a pointer so that no frame on the way holds a copy of the Record (464 bytes):
// Put runs on an HTTP/2 connection reader's stack under the parse, which must stay
// within 4 KiB (TestH2ReaderStackFitsFourKiB, and with the harness's sink
// TestHoldOverH2ReadersFitFourKiB in scenarios): a copy per call level (the sink's
// fold, the aggregates' Add, the watches of a hold) took it past 4 KiB, and the stack
// doubled to 8.
//
// Folding each record on the goroutine that made it (the harness's aggregate, under
// one lock) costs no wake-up of another goroutine per record; a channel (Chan) costs
// one each time its receiver was parked, which at thousands of streams is most records
// (issue 14).
type Sink interface {
	Put(r *Record)
}

// Chan is a Sink that sends each record on a channel, for a receiver goroutine to
// handle: sends block, so the receiver must keep reading until the sources, the Load
// or the Publisher that put into it are done. A nil Chan drops the records.
type Chan chan<- Record

// Put sends a copy of *r on c.
func (c Chan) Put(r *Record) {
	if c != nil {
		c <- *r
	}
}
