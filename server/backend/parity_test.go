package backend_test

import (
	"context"
	"math"
	"net/http"
	"testing"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/eval"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/backend"
)

// TestVQAParityServerEval asks the same items through /v1/vqa and through
// eval (models.Answerer, as `medgr2 eval` and the pipeline do), in both
// modes, and checks the server's letters and probabilities are the ones
// eval scores: one VQA path, whoever calls it.
func TestVQAParityServerEval(t *testing.T) {
	const reasonTokens = 24
	url := serve(t, open(t, backend.Options{VQA: bundles.vqa, ReasonMaxTokens: reasonTokens}), serverConfig())
	mk := func(id, img, q, gt string, opts ...string) data.Item {
		it := data.Item{QuestionID: id, Question: q, GTAnswer: gt, ImagePath: img}
		if err := it.SetOptions(opts); err != nil {
			t.Fatal(err)
		}
		return it
	}
	items := []data.Item{
		mk("xray", xrayPNG, "Which imaging modality is shown?", "X-ray", "CT", "MRI", "X-ray", "Ultrasound"),
		mk("knee", kneePNG, "Which joint is shown?", "knee", "knee", "hip", "ankle"),
		mk("pneumonia", xrayPNG, "Is there pneumonia?", "no", "yes", "no"),
		mk("dicom", crDICOM, "Which body part is imaged?", "chest", "chest", "abdomen", "head", "knee"),
	}
	ctx := context.Background()
	v, err := models.Open(ctx, bundles.vqa, models.VLMOptions{Device: runtime.CPU, IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, mode := range []models.Mode{models.ModeFast, models.ModeReason} {
		t.Run(string(mode), func(t *testing.T) {
			a, err := models.NewAnswerer(v, models.AnswererOptions{Mode: mode, Reason: models.ReasonOptions{MaxNewTokens: reasonTokens}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := eval.Evaluate(ctx, a, items, eval.Options{BatchSize: len(items)})
			if err != nil {
				t.Fatal(err)
			}
			for i, it := range items {
				var out api.VQAResponse
				req := api.VQARequest{Image: dataURI("application/octet-stream", readFile(t, it.ImagePath)),
					Question: it.Question, Options: it.Options(), Mode: string(mode)}
				if st := post(t, url+"/v1/vqa", req, &out); st != http.StatusOK {
					t.Fatalf("%s: status %d", it.QuestionID, st)
				}
				p := res.Predictions[i]
				if p.Predicted < 0 || out.Answer != data.Letters[p.Predicted:p.Predicted+1] {
					t.Errorf("%s: server answers %s, eval predicts option %d", it.QuestionID, out.Answer, p.Predicted)
				}
				for k, want := range p.OptionProbs {
					if got := out.Probabilities[data.Letters[k:k+1]]; math.Abs(got-want) > 1e-5 {
						t.Errorf("%s: P(%c) = %v through the server, %v through eval", it.QuestionID, 'A'+k, got, want)
					}
				}
				if mode == models.ModeReason && out.Reasoning != p.Output {
					t.Errorf("%s: server reasoning %q, eval output %q", it.QuestionID, out.Reasoning, p.Output)
				}
			}
		})
	}
}
