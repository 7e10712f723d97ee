/// The modules PEFT gives LoRA when `adapter_config.json` has no `target_modules`: PEFT 0.21's
/// `TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`, by the base's `model_type`. PEFT fills the field
/// in from this table as it loads such an adapter (or refuses the model types it does not list), and never
/// loads the factors of any other module the file holds; a merge must take the same modules.
enum PeftDefaultTargets {
    /// The default targets for a base of `modelType`, or nil when PEFT has none (PEFT then refuses the
    /// adapter: "Please specify `target_modules` in `peft_config`").
    static func targetModules(forModelType modelType: String) -> AdapterConfig.TargetModules? {
        if let pattern = patterns[modelType] { return .pattern(pattern) }
        return names[modelType].map(AdapterConfig.TargetModules.names)
    }

    private static let names: [String: [String]] = [
        "t5": ["q", "v"],
        "mt5": ["q", "v"],
        "bart": ["q_proj", "v_proj"],
        "gpt2": ["c_attn"],
        "bloom": ["query_key_value"],
        "blip-2": ["q", "v", "q_proj", "v_proj"],
        "opt": ["q_proj", "v_proj"],
        "gptj": ["q_proj", "v_proj"],
        "gpt_neox": ["query_key_value"],
        "gpt_neo": ["q_proj", "v_proj"],
        "bert": ["query", "value"],
        "roberta": ["query", "value"],
        "xlm-roberta": ["query", "value"],
        "electra": ["query", "value"],
        "deberta-v2": ["query_proj", "value_proj"],
        "deberta": ["in_proj"],
        "layoutlm": ["query", "value"],
        "llama": ["q_proj", "v_proj"],
        "llama4": ["q_proj", "v_proj"],
        "chatglm": ["query_key_value"],
        "gpt_bigcode": ["c_attn"],
        "mpt": ["Wqkv"],
        "RefinedWebModel": ["query_key_value"],
        "RefinedWeb": ["query_key_value"],
        "falcon": ["query_key_value"],
        "btlm": ["c_proj", "c_attn"],
        "codegen": ["qkv_proj"],
        "mistral": ["q_proj", "v_proj"],
        "mixtral": ["q_proj", "v_proj"],
        "stablelm": ["q_proj", "v_proj"],
        "phi": ["q_proj", "v_proj", "fc1", "fc2"],
        "gemma": ["q_proj", "v_proj"],
        "gemma2": ["q_proj", "v_proj"],
        "gemma3_text": ["q_proj", "v_proj"],
        "qwen2": ["q_proj", "v_proj"],
        "qwen3": ["q_proj", "v_proj"],
        "nemotron_h": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "rwkv": ["key", "value", "receptance", "output"],
        "rwkv7": ["r_proj", "k_proj", "v_proj", "o_proj", "key", "value"],
    ]

    /// Model types whose default is one regular expression over the whole module path.
    private static let patterns: [String: String] = [
        "gemma4": #".*language_model\..*\.(q_proj|v_proj)"#
    ]
}
