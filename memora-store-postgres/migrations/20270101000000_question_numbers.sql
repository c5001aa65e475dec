-- Memora: permanent numbers for question ids (QuestionNumbers port). The
-- Redis schedule keeps cards under these numbers instead of their ids; a
-- number, once given, is never given to another id. Additive.
CREATE TABLE question_numbers (
    num         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    question_id text NOT NULL UNIQUE
);
