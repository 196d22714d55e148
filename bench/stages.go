package bench

// Stages are the means, in milliseconds, of the per-request timing the
// server returns in each answer (api.Timing), over the successful answers
// that carried one. The server reports the image's decode and
// preprocessing (resize, normalise, patchify) in the request's goroutine,
// the batcher queue and the model run of a request's batch, of which the
// vision encoder's part (VisionMS; the rest is the language model); the rest of its time (reading the body,
// JSON and base64, building the response) is ServerOtherMS, and the time
// outside the server (HTTP, the client) is TransportMS.
type Stages struct {
	Responses     int     `json:"responses"`       // answers with a timing field; 0: no breakdown
	DecodeMS      float64 `json:"decode_ms"`       // decoding the image
	PreprocessMS  float64 `json:"preprocess_ms"`   // resizing, normalising and patching it
	QueueMS       float64 `json:"queue_ms"`        // waiting in the batcher
	ModelMS       float64 `json:"model_ms"`        // the model's run of the request's batch
	VisionMS      float64 `json:"vision_ms"`       // the vision encoder's part of ModelMS (the rest is the language model)
	ServerOtherMS float64 `json:"server_other_ms"` // inside the server, outside the stages above: read, parse, respond
	ServerMS      float64 `json:"server_ms"`       // the whole request inside the server
	TransportMS   float64 `json:"transport_ms"`    // client latency − ServerMS: HTTP and the client
	BatchSize     float64 `json:"batch_size"`      // mean size of the requests' batches
}

// stageSum accumulates the timing of a run's answers.
type stageSum struct {
	n                                                                int
	decode, preprocess, queue, model, vision, server, client, batchN float64
}

// add counts s when it carries the server's timing.
func (t *stageSum) add(s sample) {
	if s.timing == nil {
		return
	}
	t.n++
	t.decode += s.timing.DecodeMS
	t.preprocess += s.timing.PreprocessMS
	t.queue += s.timing.QueueMS
	t.model += s.timing.ModelMS
	t.vision += s.timing.VisionMS
	t.server += s.timing.TotalMS
	t.client += ms(s.lat)
	t.batchN += float64(s.timing.BatchSize)
}

// means returns the mean of each stage.
func (t stageSum) means() Stages {
	if t.n == 0 {
		return Stages{}
	}
	n := float64(t.n)
	st := Stages{Responses: t.n, DecodeMS: t.decode / n, PreprocessMS: t.preprocess / n, QueueMS: t.queue / n, ModelMS: t.model / n, VisionMS: t.vision / n,
		ServerMS: t.server / n, BatchSize: t.batchN / n}
	st.ServerOtherMS = st.ServerMS - st.DecodeMS - st.PreprocessMS - st.QueueMS - st.ModelMS
	st.TransportMS = t.client/n - st.ServerMS
	return st
}
