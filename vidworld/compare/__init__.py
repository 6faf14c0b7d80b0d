"""`vidworld compare`: every world model x every consumer on the same real env, budget and harness."""
